// Package integration holds wrapi's end-to-end tests: the whole system,
// driven by real clients (openai-go, the official openai npm SDK,
// @langchain/openai, curl, the wrapi CLI).
//
// An environment layer (environment_test.go) yields the services a stage
// runs on — a DynamoDB-compatible endpoint, memcached, the fake OpenAI
// upstream (pkg/openaitest) and `wrapi serve` itself — from one of two
// sources, chosen by WRAPI_IT_ENV:
//
//   - containers (containers_test.go): testcontainers-go on Docker with
//     public images (LocalStack, memcached), or on podman with images
//     built locally by scripts/images.sh (no registry is reachable there).
//     Image names are settings (WRAPI_IT_*_IMAGE); the code path is one.
//   - processes: the same services as local processes (dynalite from npm,
//     memcached from PATH, the binaries built by the tests).
//   - auto (default): containers when an engine answers, else processes,
//     with a log line.
//
// TestStage (scenarios_test.go) runs every scenario against each way a
// stage is reached (stage_test.go): the deployed shape (SigV4 → a local
// function URL front → the proxy Lambda handler on the DynamoDB store
// with a memcached or DynamoDB cache; admin commands through the real CLI
// and a fake Lambda Invoke endpoint), and the `wrapi serve` container
// over plain HTTP with a virtual key. `make integration-test` runs it all
// (scripts/integration-test.sh).
package integration
