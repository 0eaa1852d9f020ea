{{/* Names, labels and the pieces every ltvsync workload shares. */}}

{{- define "ltvsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ltvsync.fullname" -}}
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

{{- define "ltvsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ltvsync.labels" -}}
helm.sh/chart: {{ include "ltvsync.chart" . }}
app.kubernetes.io/name: {{ include "ltvsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ltvsync
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "fetcher"). */}}
{{- define "ltvsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ltvsync.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ltvsync.componentLabels" -}}
{{ include "ltvsync.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ltvsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ltvsync.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: a digest, when given, pins it exactly. */}}
{{- define "ltvsync.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A values scalar as an env string: whole numbers stay whole (YAML numbers
     arrive as float64, which would otherwise print as 1e+06). */}}
{{- define "ltvsync.envValue" -}}
{{- if kindIs "float64" . -}}
{{- if eq (float64 (int64 .)) . -}}{{- int64 . | toString | quote -}}{{- else -}}{{- . | toString | quote -}}{{- end -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . | quote -}}
{{- else -}}
{{- . | toString | quote -}}
{{- end -}}
{{- end -}}

{{/* The effective settings of a component: .Values.config, then the
     component's own config on top. Call with (dict "root" $ "svc" .Values.fetcher). */}}
{{- define "ltvsync.settings" -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.config) (deepCopy (default dict .svc.config)) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* Seconds of a duration setting ("25s", "1m", "500ms", "2h"); fails on other forms. */}}
{{- define "ltvsync.durationSeconds" -}}
{{- $s := toString . -}}
{{- if regexMatch "^[0-9]+ms$" $s -}}{{- div (trimSuffix "ms" $s | int64) 1000 -}}
{{- else if regexMatch "^[0-9]+s$" $s -}}{{- trimSuffix "s" $s | int64 -}}
{{- else if regexMatch "^[0-9]+m$" $s -}}{{- mul (trimSuffix "m" $s | int64) 60 -}}
{{- else if regexMatch "^[0-9]+h$" $s -}}{{- mul (trimSuffix "h" $s | int64) 3600 -}}
{{- else -}}{{- fail (printf "cannot read %q as a duration (use 500ms, 25s, 1m, 1h)" $s) -}}
{{- end -}}
{{- end -}}

{{/* Kafka client settings as LTVSYNC_<prefix><PROP> env entries; call with
     (dict "k" .Values.kafka "prefix" "KAFKA_" "bootstrapVar" "LTVSYNC_KAFKA_BOOTSTRAP_SERVERS" "mount" "/etc/ltvsync/kafka-ca"). */}}
{{- define "ltvsync.kafkaEnv" -}}
{{- $p := printf "LTVSYNC_%s" .prefix -}}
{{- if .k.bootstrapServers }}
- name: {{ .bootstrapVar }}
  value: {{ .k.bootstrapServers | quote }}
{{- end }}
{{- if .k.securityProtocol }}
- name: {{ $p }}SECURITY_PROTOCOL
  value: {{ .k.securityProtocol | quote }}
{{- end }}
{{- if .k.sasl.mechanism }}
- name: {{ $p }}SASL_MECHANISMS
  value: {{ .k.sasl.mechanism | quote }}
{{- end }}
{{- if .k.sasl.username }}
- name: {{ $p }}SASL_USERNAME
  value: {{ .k.sasl.username | quote }}
{{- end }}
{{- if .k.sasl.existingSecret }}
- name: {{ $p }}SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .k.sasl.existingSecret | quote }}
      key: {{ .k.sasl.passwordKey | quote }}
{{- end }}
{{- if .k.tls.caSecret }}
- name: {{ $p }}SSL_CA_LOCATION
  value: {{ printf "%s/%s" .mount .k.tls.caKey | quote }}
{{- end }}
{{- range $prop, $v := .k.properties }}
{{- if not (eq (toString $v) "") }}
- name: {{ printf "%s%s" $p ($prop | upper | replace "." "_") }}
  value: {{ include "ltvsync.envValue" $v }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Redis: LTVSYNC_REDIS_URL, with the password from a Secret. Kubernetes
     expands $(LTVSYNC_REDIS_PASSWORD_) because it is defined just before. */}}
{{- define "ltvsync.redisEnv" -}}
{{- $r := .Values.redis -}}
{{- if $r.urlSecret.name }}
- name: LTVSYNC_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $r.urlSecret.name | quote }}
      key: {{ $r.urlSecret.key | quote }}
{{- else if $r.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.auth.existingSecret | quote }}
      key: {{ $r.auth.passwordKey | quote }}
- name: LTVSYNC_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:%d/%d" $r.host (int $r.port) (int $r.db) | quote }}
{{- else }}
- name: LTVSYNC_REDIS_URL
  value: {{ printf "redis://%s:%d/%d" $r.host (int $r.port) (int $r.db) | quote }}
{{- end }}
{{- end -}}

{{/* The whole environment of one component; call with
     (dict "root" $ "component" "sink" "svc" .Values.sink). */}}
{{- define "ltvsync.env" -}}
{{- $root := .root -}}
{{- $settings := include "ltvsync.settings" . | fromYaml -}}
- name: LTVSYNC_HTTP_PORT
  value: {{ $root.Values.httpPort | toString | quote }}
{{- if eq .component "fetcher" }}
- name: LTVSYNC_CRM_CREDENTIALS_DIR
  value: {{ $root.Values.crm.passwordsMountPath | quote }}
{{- end }}
{{- range $k, $v := $settings }}
{{- if not (eq (toString $v) "") }}
- name: LTVSYNC_{{ $k }}
  value: {{ include "ltvsync.envValue" $v }}
{{- end }}
{{- end }}
{{- include "ltvsync.kafkaEnv" (dict "k" $root.Values.kafka "prefix" "KAFKA_" "bootstrapVar" "LTVSYNC_KAFKA_BOOTSTRAP_SERVERS" "mount" "/etc/ltvsync/kafka-ca") }}
{{- if has .component (list "sink" "topics") }}
{{- include "ltvsync.kafkaEnv" (dict "k" $root.Values.downstream "prefix" "DOWNSTREAM_KAFKA_" "bootstrapVar" "LTVSYNC_DOWNSTREAM_BROKERS" "mount" "/etc/ltvsync/downstream-ca") }}
{{- end }}
{{- include "ltvsync.redisEnv" $root }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts for the Kafka CA bundles, /tmp and (fetcher) the CRM passwords. */}}
{{- define "ltvsync.volumes" -}}
{{- $root := .root -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- if $root.Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ $root.Values.kafka.tls.caSecret | quote }}
    defaultMode: 0444
{{- end }}
{{- if and (has .component (list "sink" "topics")) $root.Values.downstream.tls.caSecret }}
- name: downstream-ca
  secret:
    secretName: {{ $root.Values.downstream.tls.caSecret | quote }}
    defaultMode: 0444
{{- end }}
{{- if and (eq .component "fetcher") (include "ltvsync.crmSecrets" $root) }}
- name: crm-passwords
  projected:
    defaultMode: 0440
    sources:
    {{- range (include "ltvsync.crmSecrets" $root | fromYamlArray) }}
      - secret:
          name: {{ . | quote }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "ltvsync.volumeMounts" -}}
{{- $root := .root -}}
- name: tmp
  mountPath: /tmp
{{- if $root.Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/ltvsync/kafka-ca
  readOnly: true
{{- end }}
{{- if and (has .component (list "sink" "topics")) $root.Values.downstream.tls.caSecret }}
- name: downstream-ca
  mountPath: /etc/ltvsync/downstream-ca
  readOnly: true
{{- end }}
{{- if and (eq .component "fetcher") (include "ltvsync.crmSecrets" $root) }}
- name: crm-passwords
  mountPath: {{ $root.Values.crm.passwordsMountPath | quote }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Names of the Secrets projected into the CRM password directory, as a YAML list (empty: none). */}}
{{- define "ltvsync.crmSecrets" -}}
{{- $names := list -}}
{{- range .Values.crm.passwordSecrets -}}{{- $names = append $names . -}}{{- end -}}
{{- if .Values.crm.createSecret.enabled -}}{{- $names = append $names (printf "%s-crm-passwords" (include "ltvsync.fullname" .)) -}}{{- end -}}
{{- if $names -}}{{- toYaml $names -}}{{- end -}}
{{- end -}}

{{/* TCP ports of the Kafka brokers a component reaches, as a YAML list: the
     ports of kafka.bootstrapServers (and, for the sink, of
     downstream.bootstrapServers; 9092 where none is written), plus
     networkPolicy.egress.kafka.extraPorts. Call with (dict "root" $ "component" "sink"). */}}
{{- define "ltvsync.kafkaPorts" -}}
{{- $v := .root.Values -}}
{{- $lists := list $v.kafka.bootstrapServers -}}
{{- if eq .component "sink" }}{{ $lists = append $lists $v.downstream.bootstrapServers }}{{ end -}}
{{- $ports := list -}}
{{- range $lists -}}
{{- range (splitList "," (toString .)) -}}
{{- $hp := trim . -}}
{{- if $hp -}}
{{- $p := regexFind ":[0-9]+$" $hp | trimPrefix ":" -}}
{{- $ports = append $ports (int (default "9092" $p)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $v.networkPolicy.egress.kafka.extraPorts }}{{ $ports = append $ports (int .) }}{{ end -}}
{{- toYaml (uniq $ports) -}}
{{- end -}}
