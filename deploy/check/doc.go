// Package check verifies Greenwave's deployment artefacts against the code they deploy: the configuration
// reference (docs/configuration.md) is generated from the services' own `--env-json`, and the tests of this
// package check docker-compose.yml, the Kubernetes manifests, the Dockerfiles and the Grafana dashboard against
// the service binaries built from the same checkout. Nothing here is run by the services themselves.
package check
