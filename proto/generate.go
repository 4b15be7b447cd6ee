// Package proto holds Ward's protobuf contract; the generated Go lives in
// proto/ward/v1 (messages) and proto/ward/v1/wardv1grpc (services, the
// only part that links gRPC). Run `go generate ./proto/...` with buf, protoc-gen-go and
// protoc-gen-go-grpc on PATH (see README) to rebuild it.
package proto

//go:generate buf generate
