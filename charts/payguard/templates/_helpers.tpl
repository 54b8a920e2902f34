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

{{- /* A platform destination as the flag reads it: NAMESPACE/KEY=VALUE,... or an address. */ -}}
{{- define "payguard.destination" -}}
{{- if .cidr -}}
{{ .cidr }}
{{- else -}}
{{- $labels := list -}}
{{- range $key, $value := .podLabels -}}{{- $labels = append $labels (printf "%s=%s" $key $value) -}}{{- end -}}
{{ .namespace }}/{{ join "," $labels }}
{{- end -}}
{{- end -}}

{{- define "payguard.port" -}}
{{ .port }}{{ with .protocol }}/{{ . }}{{ end }}
{{- end -}}

{{- /* The NetworkPolicy peer of a platform destination. */ -}}
{{- define "payguard.peer" -}}
{{- if .cidr -}}
- ipBlock: {cidr: {{ include "payguard.cidr" .cidr }}}
{{- else -}}
- namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: {{ .namespace }}}
  podSelector:
    matchLabels: {{- toYaml .podLabels | nindent 6 }}
{{- end -}}
{{- end -}}

{{- define "payguard.cidr" -}}
{{- if contains "/" . -}}{{ . }}{{- else if contains ":" . -}}{{ . }}/128{{- else -}}{{ . }}/32{{- end -}}
{{- end -}}
