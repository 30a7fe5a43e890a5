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
(cluster-wide mode) or into one Role per namespace (watchNamespaces).
*/}}
{{- define "strongroom.namespacedRules" -}}
# Our custom resources: watched, finalizers and annotations patched by kopf.
- apiGroups: ["strongroom.dev"]
  resources: ["secretstores", "secretmappings", "drivers", "resources", "workloads", "workloadpatches"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["strongroom.dev"]
  resources: ["secretstores/status", "secretmappings/status", "drivers/status", "resources/status", "workloads/status", "workloadpatches/status"]
  verbs: ["patch", "update"]
# Needed to set blockOwnerDeletion on owner references that point at our objects.
- apiGroups: ["strongroom.dev"]
  resources: ["secretstores/finalizers", "secretmappings/finalizers", "drivers/finalizers", "resources/finalizers", "workloads/finalizers", "workloadpatches/finalizers"]
  verbs: ["update"]
# The WorkloadPatch a workload-type Resource's `update` output becomes (created and removed by the
# Resource controller; the operator never creates or deletes other strongroom objects).
- apiGroups: ["strongroom.dev"]
  resources: ["workloadpatches"]
  verbs: ["create", "delete"]
# Secrets written for SecretMappings and Resource outputs; read for store credentials and, for the
# kubernetes backend, as the store itself.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# What rendered Workloads (and driver manifests) consist of: server-side apply (create + patch), a
# label-selected list to find what to prune, get to refuse objects someone else owns, delete to prune.
# Nothing watches or updates them.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "create", "patch", "delete"]
# Warnings and errors about our objects (kubectl describe).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Vault's kubernetes auth: a short-lived token of the service account a SecretStore names
# (TokenRequest API); no other access to service accounts.
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
{{- end }}

{{/* Cluster-scoped reads kopf needs in either mode. */}}
{{- define "strongroom.clusterRules" -}}
# Namespace discovery (which watched namespaces exist, when they come and go).
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
# CRD discovery: notices strongroom CRDs installed or upgraded after the operator started.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}
