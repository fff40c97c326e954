// Package collector wires the ingestion APIs (gRPC CollectorService, HTTP/JSON and NGSI-LD) to Kafka:
// authentication, limits and backpressure, and publishing with acks only after Kafka acknowledged. Decoding and
// validation live in pkg/ingest.
package collector
