module github.com/wrapi-dev/wrapi/functions

go 1.26.0

require github.com/wrapi-dev/wrapi/pkg v0.0.0

require github.com/aws/aws-lambda-go v1.55.1

replace github.com/wrapi-dev/wrapi/pkg => ../pkg
