{{/* The release's full name, at most 63 characters. */}}
{{- define "vdo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vdo.namespace" -}}
{{- default .Release.Namespace .Values.veleroNamespace -}}
{{- end -}}

{{- define "vdo.serviceAccountName" -}}
{{- default (include "vdo.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "vdo.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vdo.labels" -}}
{{ include "vdo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The built-in roles the DebugBundle ClusterRoles are aggregated into, comma-separated. */}}
{{- define "vdo.aggregatedTo" -}}
{{- $roles := list -}}
{{- range $role := list "admin" "edit" "view" -}}
{{- if index $.Values.rbac.aggregateTo $role -}}
{{- $roles = append $roles $role -}}
{{- end -}}
{{- end -}}
{{- join ", " $roles -}}
{{- end -}}
