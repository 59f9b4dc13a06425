// Package e2e drives the built mizuchi binary against real servers
// (versitygw, opa, openfga, jaeger) and real clients. The binary is built
// once per run by TestMain; every tool comes from scripts/install-tools.sh
// and a missing one fails the run.
package e2e
