{{/* The chart's name, shortened to a DNS label. */}}
{{- define "kube-autofix.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "kube-autofix.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kube-autofix.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kube-autofix.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Selector labels: stable across upgrades. */}}
{{- define "kube-autofix.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-autofix.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels. */}}
{{- define "kube-autofix.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kube-autofix.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kube-autofix.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-autofix.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A TOML value: strings quoted, lists bracketed, numbers and booleans as they are. */}}
{{- define "kube-autofix.tomlValue" -}}
{{- if kindIs "string" . }}{{ . | quote }}
{{- else if kindIs "slice" . }}[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "kube-autofix.tomlValue" $v }}{{ end }}]
{{- else if kindIs "float64" . }}{{ if eq (floor .) . }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}{{ . }}
{{- end }}
{{- end }}

{{/* The config file: config.toml as is, else config.settings rendered as TOML. */}}
{{- define "kube-autofix.config" -}}
{{- if .Values.config.toml }}
{{- .Values.config.toml }}
{{- else }}
{{- range $section, $table := .Values.config.settings }}
[{{ $section }}]
{{- range $key, $value := $table }}
{{- if not (kindIs "map" $value) }}
{{ $key }} = {{ include "kube-autofix.tomlValue" $value }}
{{- end }}
{{- end }}
{{- range $key, $value := $table }}
{{- if kindIs "map" $value }}

[{{ $section }}.{{ $key }}]
{{- range $k, $v := $value }}
{{ $k }} = {{ include "kube-autofix.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}

{{ end }}
{{- end }}
{{- end }}
