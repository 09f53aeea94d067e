#!/bin/bash
# As in the upstream image: Kafka's BrokerApiVersionsCommand (the compose healthcheck runs it).
exec java -Xmx128m -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  -cp '/opt/kafka/libs/*' org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
