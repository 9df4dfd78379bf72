module github.com/wrapi-dev/wrapi/cmd/wrapi

go 1.26

require github.com/wrapi-dev/wrapi/pkg v0.0.0

replace github.com/wrapi-dev/wrapi/pkg => ../../pkg
