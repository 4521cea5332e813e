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

{{/* The operator's image: by digest when image.digest is set, else by tag. */}}
{{- define "vdo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The pod's security context; ids left to the platform when securityContext.platformAssignsIds. */}}
{{- define "vdo.podSecurityContext" -}}
runAsNonRoot: true
{{- if not .Values.securityContext.platformAssignsIds }}
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Every container's security context (OpenShift restricted-v2 and Pod Security "restricted"). */}}
{{- define "vdo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The metrics Service's name. */}}
{{- define "vdo.metricsServiceName" -}}
{{- printf "%s-metrics" (include "vdo.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The most the spool can hold, in bytes: per collection slot, twice maxBundleBytes (content
spooled and its compressed copy; a finishing archive's body and the archive) and one
object-store file being decompressed (maxInflatedBytes); a tenth more for tar headers, gzip
overhead, summary and manifest.
*/}}
{{- define "vdo.spoolNeededBytes" -}}
{{- $c := .Values.collection -}}
{{- $slot := add (mul 2 (int64 $c.maxBundleBytes)) (int64 $c.maxInflatedBytes) -}}
{{- div (mul (int64 $c.maxConcurrentBundles) $slot 11) 10 -}}
{{- end -}}

{{/* Bytes of a quantity as values.schema.json allows it: digits and an optional suffix. */}}
{{- define "vdo.quantityBytes" -}}
{{- $digits := regexFind "^[0-9]+" . -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- mul (int64 $digits) (get $units (trimPrefix $digits .)) -}}
{{- end -}}

{{/*
The spool's size limit: spool.sizeLimit when set, which must hold what the collection settings
let the spool fill with (vdo.spoolNeededBytes), else that, rounded up to MiB.
*/}}
{{- define "vdo.spoolSizeLimit" -}}
{{- $needed := int64 (include "vdo.spoolNeededBytes" .) -}}
{{- $neededMi := div (add $needed 1048575) 1048576 -}}
{{- with .Values.spool.sizeLimit -}}
{{- if lt (int64 (include "vdo.quantityBytes" .)) $needed -}}
{{- $c := $.Values.collection -}}
{{- fail (printf "spool.sizeLimit %s is below what the collection settings let the spool hold: maxConcurrentBundles %d x (2 x maxBundleBytes %d + maxInflatedBytes %d) + 10%% = %dMi; when the spool fills up the kubelet evicts the pod and every bundle in flight. Raise spool.sizeLimit, lower those settings, or leave spool.sizeLimit empty to derive it" . (int64 $c.maxConcurrentBundles) (int64 $c.maxBundleBytes) (int64 $c.maxInflatedBytes) $neededMi) -}}
{{- end -}}
{{- . -}}
{{- else -}}
{{- printf "%dMi" $neededMi -}}
{{- end -}}
{{- end -}}

{{/* The operator container's resources: requests.ephemeral-storage defaults to the spool's size. */}}
{{- define "vdo.resources" -}}
{{- $resources := deepCopy (default (dict) .Values.resources) -}}
{{- $requests := default (dict) $resources.requests -}}
{{- if not (hasKey $requests "ephemeral-storage") -}}
{{- $_ := set $requests "ephemeral-storage" (include "vdo.spoolSizeLimit" .) -}}
{{- end -}}
{{- $_ := set $resources "requests" $requests -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* The operator container's environment from the chart's values (docs/configuration.md). */}}
{{- define "vdo.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: VELERO_NAMESPACE
  value: {{ include "vdo.namespace" . | quote }}
- name: SPOOL_DIR
  value: /spool
- name: MAX_CONCURRENT_BUNDLES
  value: {{ .Values.collection.maxConcurrentBundles | quote }}
- name: TARGET_WAIT_SECONDS
  value: {{ .Values.collection.targetWaitSeconds | quote }}
- name: MAX_ATTEMPTS
  value: {{ .Values.collection.maxAttempts | quote }}
- name: BUNDLE_DEADLINE
  value: {{ .Values.collection.bundleDeadline | quote }}
- name: API_TIMEOUT_SECONDS
  value: {{ .Values.collection.apiTimeoutSeconds | quote }}
- name: LOG_TIMEOUT_SECONDS
  value: {{ .Values.collection.logTimeoutSeconds | quote }}
- name: MAX_BUNDLE_BYTES
  value: {{ .Values.collection.maxBundleBytes | int64 | quote }}
- name: MAX_INFLATED_BYTES
  value: {{ .Values.collection.maxInflatedBytes | int64 | quote }}
- name: UPLOAD_BYTES_PER_SECOND
  value: {{ .Values.collection.uploadBytesPerSecond | int64 | quote }}
- name: ORPHAN_SWEEP_INTERVAL
  value: {{ .Values.garbageCollection.sweepInterval | quote }}
- name: ORPHAN_GRACE
  value: {{ .Values.garbageCollection.grace | quote }}
- name: ARCHIVE_DELETE_LIMIT
  value: {{ .Values.garbageCollection.archiveDeleteLimit | quote }}
- name: LOG_CONCURRENCY
  value: {{ .Values.collection.logConcurrency | quote }}
- name: LOG_CLIENT
  value: {{ .Values.collection.logClient | quote }}
- name: COMPRESSION_LEVEL
  value: {{ .Values.collection.compressionLevel | quote }}
- name: COMPRESSION_THREADS
  value: {{ .Values.collection.compressionThreads | quote }}
- name: RUNTIME_THREADS
  value: {{ .Values.collection.runtimeThreads | quote }}
- name: AUTO_BUNDLE_RESTORE_PHASES
  value: {{ join "," .Values.autoBundles.restorePhases | quote }}
- name: AUTO_BUNDLE_BACKUP_PHASES
  value: {{ join "," .Values.autoBundles.backupPhases | quote }}
- name: AUTO_BUNDLE_LOOKBACK
  value: {{ .Values.autoBundles.lookback | quote }}
- name: AUTO_BUNDLE_STALL_AFTER
  value: {{ .Values.autoBundles.stallAfter | quote }}
- name: MAX_STALL_BUNDLES_PER_HOUR
  value: {{ .Values.autoBundles.maxStallBundlesPerHour | quote }}
- name: MAX_AUTO_BUNDLES_PER_NAMESPACE
  value: {{ .Values.autoBundles.maxPerNamespace | quote }}
- name: DEFAULT_TTL_MANUAL
  value: {{ .Values.retention.ttlManual | quote }}
- name: DEFAULT_TTL_AUTO
  value: {{ .Values.retention.ttlAuto | quote }}
- name: LEADER_ELECTION
  value: {{ .Values.leaderElection.enabled | quote }}
- name: LEASE_NAME
  value: {{ .Values.leaderElection.leaseName | quote }}
- name: METRICS_ADDR
  value: "0.0.0.0:{{ .Values.metrics.port }}"
- name: LOG_JSON
  value: {{ .Values.logging.json | quote }}
- name: APPLY_CRD
  value: {{ .Values.crds.applyOnStart | quote }}
- name: RUST_LOG
  value: {{ .Values.logging.level | quote }}
- name: KEEP_WORKLOAD_ENV_VALUES
  value: {{ .Values.redaction.keepWorkloadEnvValues | quote }}
{{- with .Values.redaction.extraPatterns }}
# One pattern per line.
- name: REDACTION_PATTERNS
  value: {{ join "\n" . | quote }}
{{- end }}
{{- with .Values.storage.trustedHosts }}
- name: TRUSTED_STORAGE_HOSTS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.diagnosis.siteRules }}
- name: SITE_RULES
  value: {{ toJson . | quote }}
{{- end }}
{{- end -}}

{{/*
The proxy value's variables (docs/configuration.md, "Proxies"). NO_PROXY names the API server
as the pod reaches it: the kubelet expands $(KUBERNETES_SERVICE_HOST) from the service
variables it gives every container; the Service's names and loopback follow.
*/}}
{{- define "vdo.proxyEnv" -}}
{{- with .Values.proxy -}}
{{- if or .httpsProxy .httpProxy .existingSecret -}}
{{- if .existingSecret -}}
{{- range list "HTTPS_PROXY" "HTTP_PROXY" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.proxy.existingSecret }}
      key: {{ . }}
      optional: true
{{- end -}}
{{- else -}}
{{- range $name, $value := dict "HTTPS_PROXY" .httpsProxy "HTTP_PROXY" .httpProxy -}}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end -}}
{{- end -}}
{{- end }}
- name: NO_PROXY
  value: {{ join "," (concat (list "$(KUBERNETES_SERVICE_HOST)" "kubernetes.default.svc" "kubernetes.default" "kubernetes" "localhost" "127.0.0.1") .noProxy) | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* extraEnv, after failing on a name the chart already sets (vdo.env, vdo.proxyEnv). */}}
{{- define "vdo.extraEnv" -}}
{{- $own := list -}}
{{- range (include "vdo.env" . | fromYamlArray) -}}
{{- $own = append $own .name -}}
{{- end -}}
{{- range (include "vdo.proxyEnv" . | fromYamlArray) -}}
{{- $own = append $own .name -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if has .name $own -}}
{{- fail (printf "extraEnv: %s is set by the chart from its values; set that value instead" .name) -}}
{{- end -}}
{{- end -}}
{{- with .Values.extraEnv -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}
