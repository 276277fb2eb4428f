#!/bin/sh
# The article's application: answers every request with the name of the pod that served
# it, the greeting from its ConfigMap and whether its Secret is mounted. busybox httpd
# runs this script for `/` (there is no index.html). WORK (from the ConfigMap) is a
# number of shell-loop iterations spent per request, so that a request costs CPU and a
# replica on a loaded node answers slower (the load-balancing benchmark).
w=${WORK:-0}
i=0
while [ "$i" -lt "$w" ]; do i=$((i + 1)); done
printf 'Content-Type: text/plain\r\n\r\n'
echo "hello from $(hostname)"
echo "greeting: ${GREETING:-none}"
if [ -s /etc/hello/secret/token ]; then echo "secret: mounted"; else echo "secret: missing"; fi
