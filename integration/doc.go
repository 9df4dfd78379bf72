// Package integration holds wrapi's end-to-end tests: real binaries and
// services started as processes, driven by the official OpenAI SDKs. The
// environment layer (processes today; testcontainers on Docker or podman
// later) yields endpoints; the scenarios do not care which.
package integration
