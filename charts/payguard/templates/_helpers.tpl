{{- define "payguard.name" -}}payguard{{- end -}}

{{- define "payguard.fullname" -}}
{{- if contains "payguard" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-payguard" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "payguard.selectorLabels" -}}
app.kubernetes.io/name: payguard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "payguard.labels" -}}
{{ include "payguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
