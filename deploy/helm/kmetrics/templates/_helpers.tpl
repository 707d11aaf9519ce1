{{/* The name objects are called by: the release name, or <release>-kmetrics. */}}
{{- define "kmetrics.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kmetrics.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kmetrics.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kmetrics.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kmetrics.labels" -}}
{{ include "kmetrics.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The aggregated ClusterRole keeps metrics-server's name for the default release. */}}
{{- define "kmetrics.aggregatedReader" -}}
{{- if eq (include "kmetrics.fullname" .) "kmetrics" -}}
system:aggregated-metrics-reader
{{- else -}}
system:{{ include "kmetrics.fullname" . }}:aggregated-metrics-reader
{{- end -}}
{{- end -}}

{{- define "kmetrics.selfManagedCert" -}}
{{- if eq .Values.servingCert.mode "selfManaged" }}true{{ else if eq .Values.servingCert.mode "certManager" }}{{ else }}{{ fail (printf "servingCert.mode must be selfManaged or certManager, not %q" .Values.servingCert.mode) }}{{ end -}}
{{- end -}}

{{/* The APIServices served, by name. */}}
{{- define "kmetrics.apiServiceNames" -}}
{{- $names := list -}}
{{- if .Values.apiServices.metrics }}{{ $names = concat $names (list "v1.metrics.k8s.io" "v1beta1.metrics.k8s.io") }}{{ end -}}
{{- if .Values.apiServices.customMetrics }}{{ $names = concat $names (list "v1beta2.custom.metrics.k8s.io" "v1beta1.custom.metrics.k8s.io") }}{{ end -}}
{{- if .Values.apiServices.externalMetrics }}{{ $names = append $names "v1beta1.external.metrics.k8s.io" }}{{ end -}}
{{- toJson $names -}}
{{- end -}}
