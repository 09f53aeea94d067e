#!/bin/bash
# As in the upstream image: Kafka's BrokerApiVersionsCommand (the compose healthcheck runs it).
# A short-lived JVM: serial GC and the client compiler only, so it starts fast on a busy host.
exec java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  -cp '/opt/kafka/libs/*' org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
