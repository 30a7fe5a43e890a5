{{/*
Names. The full name is the release name when it already contains the chart name (the usual
`helm install strongroom ...`), so the Deployment is `strongroom-controller-manager`.
*/}}
{{- define "strongroom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strongroom.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Deployment (and the prefix of everything that belongs to the manager). */}}
{{- define "strongroom.managerName" -}}
{{- printf "%s-controller-manager" (include "strongroom.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strongroom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strongroom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strongroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller-manager
{{- end }}

{{- define "strongroom.labels" -}}
helm.sh/chart: {{ include "strongroom.chart" . }}
{{ include "strongroom.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: strongroom
{{- end }}

{{- define "strongroom.leaseName" -}}
{{- default (printf "%s-leader" (include "strongroom.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "strongroom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "strongroom.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespaces that get a Role in namespaced mode: the watched ones plus the release namespace (the
operator always serves its own namespace, where operator-level SecretStores live). Deduplicated,
as a JSON list, because templates can only return strings.
*/}}
{{- define "strongroom.roleNamespaces" -}}
{{- $namespaces := list .Release.Namespace }}
{{- range .Values.watchNamespaces }}
{{- $namespaces = append $namespaces . }}
{{- end }}
{{- $namespaces | uniq | toJson }}
{{- end }}

{{/*
What the manager may do on namespaced objects; the same rules go into the ClusterRole
(cluster-wide mode) or into one Role per namespace (watchNamespaces). Every verb here is used:
tests/integration/test_zz_rbac_audit.py compares them with the API server's audit log.
*/}}
{{- define "strongroom.namespacedRules" -}}
# Our custom resources: the operator lists and watches every kind it serves.
- apiGroups: ["strongroom.dev"]
  resources: ["secretstores", "secretmappings", "drivers", "resources", "workloads", "workloadpatches"]
  verbs: ["list", "watch"]
# Read on demand: a Workload's Resources and patches, the WorkloadPatch a Resource owns, a Resource
# again after its finalizer patch met a conflict.
- apiGroups: ["strongroom.dev"]
  resources: ["resources", "workloads", "workloadpatches"]
  verbs: ["get"]
# The operator's own finalizer on Resources (a metadata patch).
- apiGroups: ["strongroom.dev"]
  resources: ["resources"]
  verbs: ["patch"]
# Conditions, observedGeneration, outputs; a Driver's Ready (key loaded, target reachable).
- apiGroups: ["strongroom.dev"]
  resources: ["secretstores/status", "secretmappings/status", "resources/status", "workloads/status", "workloadpatches/status", "drivers/status"]
  verbs: ["patch"]
# Events about strongroom objects (synced, rotated, provisioned, failed): create, and patch to count a
# repeated one (operator/events.py). core/v1, which `kubectl describe` and `kubectl get events` show.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Owner references with blockOwnerDeletion to the kinds that own what the operator writes (Secrets,
# rendered objects, WorkloadPatches); OwnerReferencesPermissionEnforcement checks this.
- apiGroups: ["strongroom.dev"]
  resources: ["secretmappings/finalizers", "resources/finalizers", "workloads/finalizers"]
  verbs: ["update"]
# The WorkloadPatch a workload-type Resource's `update` output becomes (server-side apply: create +
# patch; deleted when the output goes). The operator creates or deletes no other strongroom object.
- apiGroups: ["strongroom.dev"]
  resources: ["workloadpatches"]
  verbs: ["create", "patch", "delete"]
# Secrets written for SecretMappings (a plain create, then server-side apply and a merge patch removing
# dropped keys) and Resource outputs (server-side apply: create + patch); read for
# store credentials, driver keys and, for the kubernetes backend, as the store itself; listed by label
# to prune a Workload's rendered Secrets. list + watch with the label selector strongroom.dev/managed=true
# (only what the operator wrote) repair what is edited or deleted by hand (operator/owned.py).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# What rendered Workloads (and driver manifests) consist of: server-side apply (create + patch), a
# label-selected list to find what to prune, get to refuse objects someone else owns, delete to prune,
# and a label-selected watch for drift repair, like Secrets. Nothing updates them.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}

