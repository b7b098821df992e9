{{/* The code-location image, shared by the hook Jobs and the dagster-user-deployments entry. */}}
{{- define "phronesis.image" -}}
{{ .Values.phronesis.image.repository }}:{{ required "phronesis.image.tag is required (use a unique tag per build)" .Values.phronesis.image.tag }}
{{- end -}}
