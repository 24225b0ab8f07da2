#!/bin/sh
# The guestbook's CGI script, for busybox httpd: GET ?cmd=set&value=TEXT
# appends TEXT to the Redis list "messages" on the leader; GET ?cmd=get
# prints the list, one message a line, as read from the followers. Redis is
# reached with nc and the Redis protocol; hosts from the Services'
# environment variables.
echo "Content-Type: text/plain"
echo
cmd="" value=""
IFS='&'
for kv in $QUERY_STRING; do
	case $kv in
	cmd=*) cmd=${kv#cmd=} ;;
	value=*) value=$(httpd -d "${kv#value=}") ;;
	esac
done
unset IFS
leader=${REDIS_MASTER_SERVICE_HOST:-redis-master}
follower=${REDIS_REPLICA_SERVICE_HOST:-redis-replica}
# redis HOST ARG...: one command as a RESP array, then QUIT; the reply raw.
# shellcheck disable=SC2016 # the $ of RESP lengths, not expansions
redis() {
	host=$1
	shift
	{
		printf '*%d\r\n' $#
		for a in "$@"; do printf '$%d\r\n%s\r\n' "$(printf %s "$a" | wc -c)" "$a"; done
		printf '*1\r\n$4\r\nQUIT\r\n'
	} | nc -w 3 "$host" 6379 | tr -d '\r'
}
case $cmd in
set)
	[ -n "$value" ] || { echo "error: no value"; exit 0; }
	r=$(redis "$leader" RPUSH messages "$value")
	case $r in :*) echo "ok" ;; *) echo "error: ${r:-no answer from $leader}" ;; esac
	;;
get)
	# The bulk strings of the array: each line after a $LEN line.
	redis "$follower" LRANGE messages 0 -1 | awk '/^\$/ { getline; print }'
	;;
*)
	echo "usage: ?cmd=set&value=TEXT or ?cmd=get"
	;;
esac
