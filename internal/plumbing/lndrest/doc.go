// Package lndrest is a small client for LND's REST API: JSON over HTTPS,
// the macaroon in the Grpc-Metadata-macaroon header, LND's TLS certificate
// pinned. The lnd adapter and the regtest harness both talk to LND through
// it, so neither needs lnd's generated gRPC code (and the protobuf fork that
// code requires).
//
// LND's REST gateway is grpc-gateway in front of its gRPC services, with
// protojson field names: bytes fields travel as standard base64, 64-bit
// integers as JSON strings (the ",string" tags on the types here), enums as
// their names. Server-streaming calls answer with one JSON object per
// message, {"result": ...} or {"error": ...}, on a response that stays open
// until the stream ends.
//
// The types carry only the fields this project reads or sets; their names
// are LND's documented REST field names (lnrpc/*.swagger.json).
package lndrest
