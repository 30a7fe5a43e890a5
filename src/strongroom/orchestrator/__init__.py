"""strongroom.orchestrator: Score files + resource definitions + shared values -> one environment's CR set,
delivered to the cluster (operator mode), to Git (gitops mode) or provisioned and rendered here (direct mode).

Pipeline (docs/orchestrator.md is the user-facing description):

- `inputs`: read Score files, resource definitions (strongroom's and Humanitec's format, plus Driver
  objects) and shared values; every problem collected, none raised;
- `matching`: which definition provisions a resource (criteria, specificity ranking, ties are errors);
- `plan`: the resource graph (ids, dependencies by placeholders, cycles), placeholders settled or rewritten,
  workload-type resources evaluated offline into WorkloadPatches;
- `emit`: the CR set (labels, namespace, names), validated against the API models, and its YAML;
- `render`: the three above as one call, as `strongroom render` uses it;
- delivery: `operator_mode` (server-side apply, prune, wait; `status` for readiness and the table),
  `gitops` (dulwich commit under `<app>/<env>/`, retried on non-fast-forward), `direct` (the operator's
  reconcile and driver code run here; `localstore` is its embedded encrypted store); `kube` is the thin
  Kubernetes client the cluster-facing modes share.

This package may import `reconcile`, `drivers`, `stores`, `templating` and `api`, never
`strongroom.operator` (import-linter enforces it).
"""
