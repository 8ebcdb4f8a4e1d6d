# Lifecycle of one etcd member, rendered by maand per allocation from Makefile.tpl and run on the
# worker as `make -s -C <job dir> <target>`. data/ (the member's database, pid file, events) and
# logs/ are never touched by deploys.
IP          := {{ .WorkerIP }}
CLIENT_PORT := {{ get "maand/bucket" "etcd_client_port" }}
ETCD        ?= /usr/bin/etcd
CONF        := $(CURDIR)/etcd.conf.yml
PID_FILE    := data/etcd.pid
HEALTH_URL  := http://$(IP):$(CLIENT_PORT)/health
# Seconds `start` waits for the member to report healthy (it does not fail when the wait ends:
# the deploy's health gate decides), and `stop` waits for it to exit before SIGKILL.
START_WAIT  ?= 20
STOP_WAIT   ?= 30

SHELL := /bin/bash
.PHONY: start stop restart status

# Succeed when $pid is a live etcd running this job's config in this mount namespace: a pid left
# over from before a reboot may belong to another process by now, and workers that share one
# process table (maand's sandbox workers) run the same command line. RUNNING reads the pid file.
ALIVE = { [ -n "$$pid" ] && tr '\0' ' ' < /proc/$$pid/cmdline 2>/dev/null | grep -qF -- "$(CONF)" && [ "$$(readlink /proc/$$pid/ns/mnt)" = "$$(readlink /proc/self/ns/mnt)" ]; }
RUNNING = pid=$$(cat $(PID_FILE) 2>/dev/null) && $(ALIVE)
# Succeeds when the member answers {"health":"true"} (it has a leader and serves quorum reads).
HEALTHY = python3 -c 'import json, sys, urllib.request as u; sys.exit(json.load(u.urlopen(sys.argv[1], timeout=1)).get("health") != "true")' $(HEALTH_URL) 2>/dev/null
# Appends "<what> <unix time> <worker ip>" to data/events: when each step ran, for operators and tests.
EVENT = echo "$(1) $$(date +%s.%N) $(IP)" >> data/events

start:
	@mkdir -p data logs
	@$(call EVENT,start)
	@if $(RUNNING); then echo "etcd already running (pid $$pid)"; else \
	  if (exec 3<>/dev/tcp/$(IP)/$(CLIENT_PORT)) 2>/dev/null; then \
	    echo "$(IP):$(CLIENT_PORT) is in use, but not by the etcd of $(PID_FILE): stop that process first" >&2; exit 1; fi; \
	  setsid nohup $(ETCD) --config-file $(CONF) >> logs/etcd.log 2>&1 < /dev/null & echo $$! > $(PID_FILE); \
	  echo "etcd started on $(IP) (pid $$!)"; fi
	@pid=$$(cat $(PID_FILE)); deadline=$$(( $$(date +%s) + $(START_WAIT) )); \
	while ! $(HEALTHY); do \
	  if ! $(ALIVE); then echo "etcd on $(IP) exited; last lines of logs/etcd.log:" >&2; tail -n 20 logs/etcd.log >&2; exit 1; fi; \
	  if [ $$(date +%s) -ge $$deadline ]; then echo "etcd on $(IP) not healthy after $(START_WAIT)s (waiting for its peers?)"; exit 0; fi; \
	  sleep 0.2; \
	done; \
	echo "etcd on $(IP) healthy"; $(call EVENT,started)

stop:
	@mkdir -p data
	@$(call EVENT,stop)
	@if $(RUNNING); then \
	  kill -TERM $$pid; deadline=$$(( $$(date +%s) + $(STOP_WAIT) )); \
	  while $(ALIVE) && [ $$(date +%s) -lt $$deadline ]; do sleep 0.1; done; \
	  if $(ALIVE); then echo "etcd on $(IP) (pid $$pid) still running after $(STOP_WAIT)s: SIGKILL" >&2; kill -KILL $$pid; sleep 0.5; fi; \
	  echo "etcd on $(IP) stopped"; \
	else echo "etcd on $(IP) not running"; fi
	@rm -f $(PID_FILE)
	@$(call EVENT,stopped)

restart:
	@mkdir -p data
	@$(call EVENT,restart)
	@$(MAKE) --no-print-directory stop start

status:
	@if $(RUNNING); then echo "etcd on $(IP) running (pid $$pid)"; else echo "etcd on $(IP) not running"; exit 1; fi
	@if $(HEALTHY); then echo "etcd on $(IP) healthy"; else echo "etcd on $(IP) not healthy"; exit 1; fi
