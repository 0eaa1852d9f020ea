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
     (dict "k" .Values.kafka "prefix" "KAFKA_" "bootstrapVar" "LTVSYNC_KAFKA_BOOTSTRAP_SERVERS"
           "mount" "/etc/ltvsync/kafka-ca" "clientMount" "/etc/ltvsync/kafka-client").
     The CA and the mTLS certificate and key are files (ltvsync.volumes);
     passwords come from Secrets. */}}
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
{{- if .k.tls.clientSecret }}
- name: {{ $p }}SSL_CERTIFICATE_LOCATION
  value: {{ printf "%s/%s" .clientMount .k.tls.certKey | quote }}
- name: {{ $p }}SSL_KEY_LOCATION
  value: {{ printf "%s/%s" .clientMount .k.tls.keyKey | quote }}
{{- end }}
{{- if .k.tls.keyPasswordSecret }}
- name: {{ $p }}SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .k.tls.keyPasswordSecret | quote }}
      key: {{ .k.tls.keyPasswordKey | quote }}
{{- end }}
{{- range $prop, $v := .k.properties }}
{{- if not (eq (toString $v) "") }}
- name: {{ printf "%s%s" $p ($prop | upper | replace "." "_") }}
  value: {{ include "ltvsync.envValue" $v }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Redis: LTVSYNC_REDIS_URL, with the password from a Secret. Kubernetes
     expands $(REDIS_PASSWORD) because it is defined just before. With
     redis.auth.username the URL is redis://user:password@ (AUTH user
     password, a Redis 6 ACL user). With redis.tls.enabled the URL names the
     pod's stunnel sidecar, 127.0.0.1:redis.tls.localPort. With
     redis.clusterSeeds the address is the seed list as written
     (redis://[[user]:password@]host:port,host:port,...; one seed alone is
     redis-cluster://host:port, which the services also read as a cluster),
     and no /db: a Redis Cluster has database 0 only. */}}
{{- define "ltvsync.redisEnv" -}}
{{- $r := .Values.redis -}}
{{- $seeds := default "" $r.clusterSeeds -}}
{{- $scheme := "redis" -}}
{{- $addr := printf "%s:%d/%d" $r.host (int $r.port) (int $r.db) -}}
{{- if $seeds }}
{{- if $r.urlSecret.name }}
{{- fail "redis.clusterSeeds and redis.urlSecret both name the Redis: set one (a urlSecret may hold a seed list itself)" }}
{{- end }}
{{- if $r.tls.enabled }}
{{- fail "redis.tls.enabled is one stunnel tunnel to redis.host: it cannot follow a Redis Cluster's redirections to its other nodes (redis.clusterSeeds)" }}
{{- end }}
{{- if ne (int $r.db) 0 }}
{{- fail (printf "redis.db is %d, but a Redis Cluster (redis.clusterSeeds) has database 0 only" (int $r.db)) }}
{{- end }}
{{- range (splitList "," $seeds) }}
{{- $p := regexFind "[0-9]+$" . | int }}
{{- if or (lt $p 1) (gt $p 65535) }}
{{- fail (printf "redis.clusterSeeds: %q has no port in 1-65535" .) }}
{{- end }}
{{- end }}
{{- $addr = $seeds }}
{{- if not (contains "," $seeds) }}{{ $scheme = "redis-cluster" }}{{ end }}
{{- end }}
{{- if $r.tls.enabled }}
{{- if $r.urlSecret.name }}
{{- fail "redis.tls.enabled rewrites the Redis URL to the sidecar: use redis.auth (a percent-encoded password works) instead of redis.urlSecret" }}
{{- end }}
{{- $addr = printf "127.0.0.1:%d/%d" (int $r.tls.localPort) (int $r.db) }}
{{- end }}
{{- if and $r.auth.username (not $r.auth.existingSecret) (not $r.urlSecret.name) }}
{{- fail "redis.auth.username needs redis.auth.existingSecret (ltvsync sends AUTH only with a password)" }}
{{- end }}
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
  value: {{ printf "%s://%s:$(REDIS_PASSWORD)@%s" $scheme $r.auth.username $addr | quote }}
{{- else }}
- name: LTVSYNC_REDIS_URL
  value: {{ printf "%s://%s" $scheme $addr | quote }}
{{- end }}
{{- end -}}

{{/* TCP ports of Redis, as a YAML list: redis.port, or with
     redis.clusterSeeds the seeds' ports; plus
     networkPolicy.egress.redis.extraPorts. */}}
{{- define "ltvsync.redisPorts" -}}
{{- $r := .Values.redis -}}
{{- $ports := list -}}
{{- if $r.clusterSeeds -}}
{{- range (splitList "," $r.clusterSeeds) -}}
{{- $ports = append $ports (int (regexFind "[0-9]+$" .)) -}}
{{- end -}}
{{- else -}}
{{- $ports = append $ports (int $r.port) -}}
{{- end -}}
{{- range .Values.networkPolicy.egress.redis.extraPorts }}{{ $ports = append $ports (int .) }}{{ end -}}
{{- toYaml (uniq $ports) -}}
{{- end -}}

{{/* redis.tls: the stunnel client config (one ConfigMap, redis-tls.yaml).
     Plain Redis on 127.0.0.1:localPort, TLS to host:port; the server's
     chain is verified against the CA and its name against serverName
     (DNS name or IP address), which is also sent as SNI. */}}
{{- define "ltvsync.stunnelConf" -}}
{{- $t := .Values.redis.tls -}}
{{- $name := default .Values.redis.host $t.serverName -}}
; stunnel client for ltvsync: hiredis 0.14 has no TLS.
foreground = yes
syslog = no
pid =
debug = notice

[redis]
client = yes
accept = 127.0.0.1:{{ int $t.localPort }}
connect = {{ .Values.redis.host }}:{{ int .Values.redis.port }}
; resolve the host on every connection (a moved Redis is followed)
delay = yes
sslVersionMin = TLSv1.2
verifyChain = yes
CAfile = /etc/ltvsync/redis-tls-ca/{{ $t.caKey }}
{{- if regexMatch "^[0-9.]+$|:" $name }}
checkIP = {{ $name }}
{{- else }}
checkHost = {{ $name }}
sni = {{ $name }}
{{- end }}
{{- if $t.clientSecret }}
cert = /etc/ltvsync/redis-tls-client/{{ $t.certKey }}
key = /etc/ltvsync/redis-tls-client/{{ $t.keyKey }}
{{- end }}
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
{{- end -}}

{{/* Whether the stunnel sidecar is a native sidecar (an init container
     with restartPolicy Always: started before the service, stopped after
     it), which Kubernetes runs from 1.29 on. */}}
{{- define "ltvsync.nativeSidecar" -}}
{{- if semverCompare ">=1.29-0" .Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- end -}}

{{/* The stunnel sidecar container; call with (dict "root" $ "grace" <SHUTDOWN_GRACE seconds>). */}}
{{- define "ltvsync.redisTunnel" -}}
{{- $root := .root -}}
{{- $t := $root.Values.redis.tls -}}
{{- if eq (int $t.localPort) (int $root.Values.httpPort) }}
{{- fail "redis.tls.localPort must differ from httpPort" }}
{{- end }}
- name: redis-tls
  {{- if and $t.image.repository $t.image.digest }}
  image: {{ printf "%s@%s" $t.image.repository $t.image.digest | quote }}
  {{- else if $t.image.repository }}
  image: {{ printf "%s:%s" $t.image.repository (required "redis.tls.image.tag (or digest) must pin the sidecar image" $t.image.tag) | quote }}
  {{- else }}
  image: {{ include "ltvsync.image" $root | quote }}
  {{- end }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: ["stunnel", "/etc/ltvsync/stunnel/stunnel.conf"]
  {{- if include "ltvsync.nativeSidecar" $root }}
  restartPolicy: Always
  {{- else }}
  lifecycle:
    # A plain container gets SIGTERM with the service: keep the tunnel
    # open while the service drains (SHUTDOWN_GRACE).
    preStop:
      exec:
        command: ["sleep", {{ add .grace 2 | toString | quote }}]
  {{- end }}
  resources:
    {{- toYaml $t.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: redis-tls-config
      mountPath: /etc/ltvsync/stunnel
      readOnly: true
    - name: redis-tls-ca
      mountPath: /etc/ltvsync/redis-tls-ca
      readOnly: true
    {{- if $t.clientSecret }}
    - name: redis-tls-client
      mountPath: /etc/ltvsync/redis-tls-client
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The sidecar's volumes (services only, not the topics Job). */}}
{{- define "ltvsync.redisTunnelVolumes" -}}
{{- $t := .Values.redis.tls -}}
- name: redis-tls-config
  configMap:
    name: {{ include "ltvsync.fullname" . }}-redis-tls
    defaultMode: 0444
- name: redis-tls-ca
  secret:
    secretName: {{ $t.caSecret | quote }}
    defaultMode: 0444
{{- if $t.clientSecret }}
- name: redis-tls-client
  secret:
    secretName: {{ $t.clientSecret | quote }}
    defaultMode: 0440
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
{{- if and (has .component (list "fetcher" "api")) $root.Values.sealKey.existingSecret }}
- name: LTVSYNC_SEAL_KEY_FILE
  value: {{ printf "%s/%s" (trimSuffix "/" $root.Values.sealKey.mountPath) $root.Values.sealKey.key | quote }}
{{- end }}
{{- range $k, $v := $settings }}
{{- if not (eq (toString $v) "") }}
- name: LTVSYNC_{{ $k }}
  value: {{ include "ltvsync.envValue" $v }}
{{- end }}
{{- end }}
{{- include "ltvsync.kafkaEnv" (dict "k" $root.Values.kafka "prefix" "KAFKA_" "bootstrapVar" "LTVSYNC_KAFKA_BOOTSTRAP_SERVERS" "mount" "/etc/ltvsync/kafka-ca" "clientMount" "/etc/ltvsync/kafka-client") }}
{{- if has .component (list "sink" "topics") }}
{{- include "ltvsync.kafkaEnv" (dict "k" $root.Values.downstream "prefix" "DOWNSTREAM_KAFKA_" "bootstrapVar" "LTVSYNC_DOWNSTREAM_BROKERS" "mount" "/etc/ltvsync/downstream-ca" "clientMount" "/etc/ltvsync/downstream-client") }}
{{- end }}
{{- include "ltvsync.redisEnv" $root }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts for the Kafka CA bundles and client certificates,
     /tmp, (fetcher) the CRM passwords and (redis.tls.enabled, services
     only) the stunnel sidecar's config and certificates. Private keys and
     passwords are 0440: root-owned, readable through fsGroup. */}}
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
{{- if $root.Values.kafka.tls.clientSecret }}
- name: kafka-client
  secret:
    secretName: {{ $root.Values.kafka.tls.clientSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- if and (has .component (list "sink" "topics")) $root.Values.downstream.tls.caSecret }}
- name: downstream-ca
  secret:
    secretName: {{ $root.Values.downstream.tls.caSecret | quote }}
    defaultMode: 0444
{{- end }}
{{- if and (has .component (list "sink" "topics")) $root.Values.downstream.tls.clientSecret }}
- name: downstream-client
  secret:
    secretName: {{ $root.Values.downstream.tls.clientSecret | quote }}
    defaultMode: 0440
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
{{- if and (has .component (list "fetcher" "api")) $root.Values.sealKey.existingSecret }}
{{- /* the seal key ring: no subPath, so a rotated Secret reaches running pods */}}
- name: seal-key
  secret:
    secretName: {{ $root.Values.sealKey.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.sealKey.key | quote }}
        path: {{ $root.Values.sealKey.key | quote }}
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
{{- if $root.Values.kafka.tls.clientSecret }}
- name: kafka-client
  mountPath: /etc/ltvsync/kafka-client
  readOnly: true
{{- end }}
{{- if and (has .component (list "sink" "topics")) $root.Values.downstream.tls.caSecret }}
- name: downstream-ca
  mountPath: /etc/ltvsync/downstream-ca
  readOnly: true
{{- end }}
{{- if and (has .component (list "sink" "topics")) $root.Values.downstream.tls.clientSecret }}
- name: downstream-client
  mountPath: /etc/ltvsync/downstream-client
  readOnly: true
{{- end }}
{{- if and (eq .component "fetcher") (include "ltvsync.crmSecrets" $root) }}
- name: crm-passwords
  mountPath: {{ $root.Values.crm.passwordsMountPath | quote }}
  readOnly: true
{{- end }}
{{- if and (has .component (list "fetcher" "api")) $root.Values.sealKey.existingSecret }}
- name: seal-key
  mountPath: {{ $root.Values.sealKey.mountPath | quote }}
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
