// Package deploy holds Mizuchi's deployment artefacts: the systemd unit
// (systemd/), the container image's default configuration (container/)
// and the Helm chart (helm/mizuchi/). The Dockerfile is at the repository
// root.
//
// It has no Go code of its own; its tests keep the artefacts and the
// user documentation (docs/API.md, docs/ARCHITECTURE.md,
// docs/DEPLOYMENT.md, docs/SECURITY.md) true to the code: configurations
// parse with config.Parse, the chart renders to valid manifests with the
// required security settings, every package and error code is documented.
package deploy
