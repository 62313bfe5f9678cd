{{- define "virtual-kubelet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "virtual-kubelet.fullname" -}}
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

{{- define "virtual-kubelet.nodeName" -}}
{{- default (include "virtual-kubelet.fullname" .) .Values.nodeName -}}
{{- end -}}

{{- define "virtual-kubelet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "virtual-kubelet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "virtual-kubelet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "virtual-kubelet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "virtual-kubelet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "virtual-kubelet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "virtual-kubelet.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Whether vk reads a provider configuration file, from the ConfigMap or a Secret. */}}
{{- define "virtual-kubelet.hasProviderConfig" -}}
{{- if or .Values.provider.existingSecret.name (gt (len .Values.provider.config) 0) -}}true{{- end -}}
{{- end -}}

{{/* vk's --config file: the camelCase names of `vk run` flags. */}}
{{- define "virtual-kubelet.config" -}}
{{- $labels := merge (dict "kubernetes.io/os" .Values.os) .Values.nodeLabels -}}
{{- $config := dict "nodeName" (include "virtual-kubelet.nodeName" .) "provider" .Values.provider.name "kubeletPort" (int .Values.kubelet.port) "kubeletAuth" .Values.kubelet.auth "logLevel" .Values.logLevel "labels" $labels -}}
{{- if .Values.taint.enabled -}}
{{- $_ := set $config "taints" (list (dict "key" .Values.taint.key "value" (default .Values.provider.name .Values.taint.value) "effect" .Values.taint.effect)) -}}
{{- else -}}
{{- $_ := set $config "taints" (list) -}}
{{- end -}}
{{- if include "virtual-kubelet.hasProviderConfig" . -}}
{{- $_ := set $config "providerConfig" "/etc/virtual-kubelet/provider/provider.yaml" -}}
{{- end -}}
{{- if eq .Values.kubelet.servingCert.mode "secret" -}}
{{- $_ := set $config "kubeletTlsCertFile" "/etc/virtual-kubelet/tls/tls.crt" -}}
{{- $_ := set $config "kubeletTlsKeyFile" "/etc/virtual-kubelet/tls/tls.key" -}}
{{- else -}}
{{- $_ := set $config "kubeletServingCert" .Values.kubelet.servingCert.mode -}}
{{- end -}}
{{- toYaml (mergeOverwrite $config .Values.extraConfig) -}}
{{- end -}}
