{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "sentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release prefix of every resource name: `<release>` if it already contains the chart name, else
`<release>-<chart>`; fullnameOverride wins.
*/}}
{{- define "sentinel.fullname" -}}
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

{{- define "sentinel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "sentinel.labels" -}}
helm.sh/chart: {{ include "sentinel.chart" . }}
app.kubernetes.io/name: {{ include "sentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sentinel
{{- end }}

{{/*
The per-component helpers take a dict: (dict "root" $ "name" <component name>).
*/}}
{{- define "sentinel.componentFullname" -}}
{{- printf "%s-%s" (include "sentinel.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sentinel.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "sentinel.componentLabels" -}}
{{ include "sentinel.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Image of a component: `<registry>/<repository>-<component>:<tag>`, or the component's own
image.repository / image.tag when set.
*/}}
{{- define "sentinel.image" -}}
{{- $image := .root.Values.image }}
{{- $own := .component.image | default dict }}
{{- $repository := $own.repository | default (printf "%s-%s" $image.repository .name) }}
{{- $tag := $own.tag | default $image.tag | default .root.Chart.AppVersion }}
{{- if $image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" $image.registry) $repository $tag }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "sentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sentinel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding SENTINEL_POSTGRES_DSN and SENTINEL_REDIS_URL.
*/}}
{{- define "sentinel.storesSecretName" -}}
{{- .Values.stores.existingSecret | default (printf "%s-stores" (include "sentinel.fullname" .)) }}
{{- end }}

{{- define "sentinel.configMapName" -}}
{{- printf "%s-env" (include "sentinel.fullname" .) }}
{{- end }}

{{/*
SENTINEL_<PEER>_ADDR of a peer component: incident-manager -> SENTINEL_INCIDENT_MANAGER_ADDR.
*/}}
{{- define "sentinel.peerEnvName" -}}
{{- printf "SENTINEL_%s_ADDR" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
Address of a peer: `dns:///` + the Service's fully qualified name, so that gRPC resolves every
ready pod of a headless Service and balances round_robin (sentinel.runtime.channels). Takes
(dict "root" $ "name" <peer>); fails when the peer is not an enabled component.
*/}}
{{- define "sentinel.peerAddr" -}}
{{- $peer := get .root.Values.components .name }}
{{- if not $peer }}
{{- fail (printf "peer %q is not a component: check the components' peers lists" .name) }}
{{- end }}
{{- if not $peer.enabled }}
{{- fail (printf "peer %q is disabled but another component calls it: enable it or drop it from that component's peers" .name) }}
{{- end }}
{{- printf "dns:///%s.%s.svc.%s:%d" (include "sentinel.componentFullname" .) .root.Release.Namespace .root.Values.clusterDomain (int $peer.port) }}
{{- end }}

{{/*
Checksum of the ConfigMap and the chart's Secret, so that a change to either rolls the pods.
*/}}
{{- define "sentinel.configChecksum" -}}
{{- $cm := include (print .Template.BasePath "/configmap.yaml") . }}
{{- $secret := include (print .Template.BasePath "/secret.yaml") . }}
{{- print $cm $secret | sha256sum }}
{{- end }}
