# bench/catchup.sh - the bench's catch-up, limit, wide-ingest and resume
# phases; sourced by bench/run.sh, whose helpers and variables it uses.
#
#   d. catch-up: upstream down, CATCHUP_SAMPLES samples in 500-series
#      requests from S shard-like senders (loadgen --shards S
#      --connections S: disjoint series per connection, each waiting for
#      its answer), then drained into a fresh VictoriaMetrics, the relay
#      with the shipped relay.conf, vmagent with its defaults. Once per S in
#      CATCHUP_SENDERS. Rows keyed "cuS_". Peak RssAnon of both halves.
#   e. the physical limit: the same requests (loadgen --shards S) posted
#      straight from loadgen's memory into a fresh VictoriaMetrics over
#      LIMIT_CONNS connections; loadgen's seconds until the last answer.
#      Run for the rows in LIMIT_SENDERS.
#   f. wide ingest: a fresh instance (upstream down, the bench's config as
#      in phase a) takes WIDE_SAMPLES samples in 500-series, then in
#      2000-series requests over WIDE_CONNS connections; peak RssAnon.
#   g. resume: both systems (shipped relay.conf, vmagent's defaults) buffer
#      a few requests with the upstream down; OUTAGE_SECONDS later a
#      VictoriaMetrics starts on the port each points at. Measures the time
#      from VM's first 200 on /health to its first inserted row. Both
#      systems wait out the outage side by side (it is backoff, not CPU,
#      that is measured).

# phase_backlog SYS SENDERS: buffers the catch-up backlog of row cuSENDERS_.
phase_backlog() {
	local sys=$1 n=$2 k=cu$2_ port dir line
	free_port port
	free_port "UPSTREAM[$sys$k]"
	dir=$WORK/$sys-$k-data
	DATA[$sys$k]=$dir
	settle_disk
	log "$sys: catch-up backlog from $n shard-like senders (upstream down)"
	start_system "$sys" "$port" "${UPSTREAM[$sys$k]}" "$dir" "$WORK/$sys.log" shipped
	watch_start "$SYS_PID" "$WORK/$sys.rss-backlog"
	loadgen_run line --url "$(ingest_url "$port")" --series-per-request 500 \
		--samples "$CATCHUP_SAMPLES" --shards "$n" --connections "$n"
	watch_stop
	M[$sys.${k}rss_buffer]=$(awk '{ printf "%.2f", $1 / 1024 }' "$WORK/$sys.rss-backlog")
	raw "$sys backlog $k $line rss_anon_peak_kb=$(cat "$WORK/$sys.rss-backlog")"
	log "$sys: backlog $k: $line"
	M[$sys.${k}backlog]=$(kv "$line" samples_acked)
	M[$sys.${k}failed]=$(kv "$line" failed)
	stop_proc "$SYS_PID"
}

# phase_limit SENDERS: VictoriaMetrics alone on the same requests.
phase_limit() {
	local n=$1 k=cu$1_ vmport vmdir=$WORK/limit-vm vmpid line
	free_port vmport
	settle_disk
	mkdir -p "$vmdir"
	"$VICTORIA" -storageDataPath="$vmdir" -httpListenAddr="127.0.0.1:$vmport" \
		-loggerLevel=ERROR >"$WORK/limit-vm.log" 2>&1 &
	vmpid=$!
	PIDS+=("$vmpid")
	wait_http "http://127.0.0.1:$vmport/health" "$vmpid" 60 ||
		die "victoria-metrics did not start; see $WORK/limit-vm.log"
	log "limit: the $n-sender requests straight into VictoriaMetrics, $LIMIT_CONNS connections"
	loadgen_run line --url "http://127.0.0.1:$vmport/api/v1/write" \
		--series-per-request 500 --samples "$CATCHUP_SAMPLES" --shards "$n" \
		--connections "$LIMIT_CONNS"
	raw "limit $k connections=$LIMIT_CONNS $line"
	log "limit $k: $line"
	M[limit.${k}s]=$(kv "$line" seconds)
	M[limit.${k}failed]=$(kv "$line" failed)
	stop_proc "$vmpid"
	rm -rf "$vmdir"
}

# phase_wide SYS: ingest over WIDE_CONNS connections (rows rate500_w, ...).
phase_wide() {
	local sys=$1 port up dir line n c0 c1
	free_port port
	free_port up
	dir=$WORK/$sys-wide
	settle_disk
	log "$sys: ingest over $WIDE_CONNS connections (upstream down)"
	start_system "$sys" "$port" "$up" "$dir" "$WORK/$sys.log"
	watch_start "$SYS_PID" "$WORK/$sys.rss-wide"
	c0=$(cpu_ticks "$SYS_PID")
	for n in 500 2000; do
		loadgen_run line --url "$(ingest_url "$port")" --series-per-request $n \
			--samples "$WIDE_SAMPLES" --connections "$WIDE_CONNS" \
			--seed $((n + 7))
		sleep "$SETTLE"
		c1=$(cpu_ticks "$SYS_PID")
		raw "$sys wide n=$n connections=$WIDE_CONNS cpu_ticks=$((c1 - c0)) $line"
		log "$sys: $n-series x$WIDE_CONNS: $line"
		M[$sys.rate${n}_w]=$(kv "$line" samples_per_s)
		M[$sys.cpu${n}_w]=$(cpu_us $((c1 - c0)) "$(kv "$line" samples_acked)")
		M[$sys.failed_w]=$(( ${M[$sys.failed_w]:-0} + $(kv "$line" failed) ))
		c0=$c1
	done
	watch_stop
	M[$sys.rss_wide]=$(awk '{ printf "%.2f", $1 / 1024 }' "$WORK/$sys.rss-wide")
	raw "$sys wide rss_anon_peak_kb=$(cat "$WORK/$sys.rss-wide")"
	stop_proc "$SYS_PID"
	rm -rf "$dir"
}

# phase_resume SYS...: resume latency after an OUTAGE_SECONDS outage.
phase_resume() {
	local sys port line t_load t_end t rows pending
	local -A up vmpid t_up sys_pid
	for sys in "$@"; do
		free_port port
		free_port "up[$sys]"
		start_system "$sys" "$port" "${up[$sys]}" "$WORK/$sys-resume" \
			"$WORK/$sys.log" shipped
		sys_pid[$sys]=$SYS_PID
		loadgen_run line --url "$(ingest_url "$port")" --series-per-request 500 \
			--requests 40 --connections 1
		raw "$sys resume load $line"
	done
	t_load=$(now_us)
	log "resume: ${*}: upstream down for $OUTAGE_SECONDS s"
	sleep "$OUTAGE_SECONDS"
	for sys in "$@"; do
		mkdir -p "$WORK/$sys-resume-vm"
		"$VICTORIA" -storageDataPath="$WORK/$sys-resume-vm" \
			-httpListenAddr="127.0.0.1:${up[$sys]}" -loggerLevel=ERROR \
			>"$WORK/$sys-resume-vm.log" 2>&1 &
		vmpid[$sys]=$!
		PIDS+=("${vmpid[$sys]}")
	done
	t_end=$(( $(now_us) + RESUME_TIMEOUT * 1000000 ))
	pending=$*
	while [ -n "$pending" ] && [ "$(now_us)" -lt "$t_end" ]; do
		for sys in $pending; do
			t=$(now_us)
			if [ -z "${t_up[$sys]:-}" ]; then
				[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
					"http://127.0.0.1:${up[$sys]}/health")" = 200 ] &&
					t_up[$sys]=$t
				continue
			fi
			rows=$(vm_rows "${up[$sys]}")
			if [ "$rows" -gt 0 ]; then
				M[$sys.resume_s]=$(awk -v d=$((t - t_up[$sys])) 'BEGIN { printf "%.2f", d / 1e6 }')
				raw "$sys resume outage_s=$(( (t_up[$sys] - t_load) / 1000000 ))" \
					"first_row_after_s=${M[$sys.resume_s]}"
				log "$sys: first row ${M[$sys.resume_s]} s after the upstream was back"
				pending=$(printf '%s\n' $pending | grep -vx "$sys" | tr '\n' ' ')
				pending=${pending% }
			fi
		done
		sleep 0.1
	done
	for sys in $pending; do
		log "$sys: nothing delivered within $RESUME_TIMEOUT s of the upstream's return"
	done
	for sys in "$@"; do
		stop_proc "${sys_pid[$sys]}"
		stop_proc "${vmpid[$sys]}"
		rm -rf "$WORK/$sys-resume" "$WORK/$sys-resume-vm"
	done
}
