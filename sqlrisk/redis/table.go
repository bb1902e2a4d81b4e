package redis

import "github.com/airlock-gw/airlock/sqlrisk/rule"

// keys says where a command's keys are: none, the first argument, every
// argument, or every other argument (MSET k v k v).
type keys uint8

const (
	keyNone keys = iota
	keyFirst
	keyAll
	keyPairs
	keyFirstTwo // RENAME, SMOVE, LMOVE…: source and destination
)

// command is one entry of the command table. arity follows Redis's own
// convention (COMMAND INFO): n means exactly n arguments including the
// name(s), -n means at least n.
type command struct {
	arity int
	rule  string
	keys  keys
	sub   map[string]command
}

// Categories of the table, by effect.
const (
	read  = ""
	write = rule.WriteKey
)

func r(arity int) command  { return command{arity: arity, rule: read, keys: keyFirst} }
func rk(arity int) command { return command{arity: arity, rule: read, keys: keyAll} }
func w(arity int) command  { return command{arity: arity, rule: write, keys: keyFirst} }
func wk(arity int) command { return command{arity: arity, rule: write, keys: keyAll} }
func w2(arity int) command { return command{arity: arity, rule: write, keys: keyFirstTwo} }
func x(arity int, id string) command {
	return command{arity: arity, rule: id}
}
func container(arity int, sub map[string]command) command {
	return command{arity: arity, sub: sub}
}

// commands is Airlock's Redis command table (Redis 7.x and 8.0, core
// commands). No Go library ships one with arities and an effect category,
// so it is written here by hand from the Redis command reference; a command
// or subcommand missing from it is command.unknown (high risk), never
// silently allowed.
var commands = map[string]command{
	// Strings and bitmaps.
	"GET": r(2), "SET": w(-3), "SETNX": w(3), "SETEX": w(4), "PSETEX": w(4), "MGET": rk(-2),
	"MSET": {arity: -3, rule: write, keys: keyPairs}, "MSETNX": {arity: -3, rule: write, keys: keyPairs},
	"GETSET": w(3), "GETDEL": w(2), "GETEX": w(-2), "APPEND": w(3), "STRLEN": r(2), "INCR": w(2),
	"DECR": w(2), "INCRBY": w(3), "DECRBY": w(3), "INCRBYFLOAT": w(3), "GETRANGE": r(4), "SUBSTR": r(4),
	"SETRANGE": w(4), "LCS": r(-3), "SETBIT": w(4), "GETBIT": r(3), "BITCOUNT": r(-2), "BITPOS": r(-3),
	"BITOP": {arity: -4, rule: write}, "BITFIELD": w(-2), "BITFIELD_RO": r(-2),

	// Generic key commands.
	"DEL": wk(-2), "UNLINK": wk(-2), "EXISTS": rk(-2), "EXPIRE": w(-3), "PEXPIRE": w(-3),
	"EXPIREAT": w(-3), "PEXPIREAT": w(-3), "EXPIRETIME": r(2), "PEXPIRETIME": r(2), "TTL": r(2),
	"PTTL": r(2), "PERSIST": w(2), "TYPE": r(2), "RENAME": w2(3), "RENAMENX": w2(3),
	"RANDOMKEY": x(1, read), "SCAN": x(-2, read), "DUMP": r(2), "RESTORE": w(-4), "MOVE": w(3),
	"COPY": w2(-3), "TOUCH": rk(-2), "SORT": w(-2), "SORT_RO": r(-2), "WAIT": x(3, read),
	"WAITAOF": x(4, read), "DBSIZE": x(1, read),
	"KEYS": x(2, rule.AdminBlocking),
	"OBJECT": container(-2, map[string]command{
		"ENCODING": r(3), "FREQ": r(3), "IDLETIME": r(3), "REFCOUNT": r(3), "HELP": x(2, read),
	}),

	// Hashes.
	"HSET": w(-4), "HSETNX": w(4), "HGET": r(3), "HMSET": w(-4), "HMGET": r(-3), "HGETALL": r(2),
	"HDEL": w(-3), "HEXISTS": r(3), "HINCRBY": w(4), "HINCRBYFLOAT": w(4), "HKEYS": r(2), "HVALS": r(2),
	"HLEN": r(2), "HSTRLEN": r(3), "HRANDFIELD": r(-2), "HSCAN": r(-3), "HEXPIRE": w(-6),
	"HPEXPIRE": w(-6), "HEXPIREAT": w(-6), "HPEXPIREAT": w(-6), "HPERSIST": w(-5), "HTTL": r(-5),
	"HPTTL": r(-5), "HEXPIRETIME": r(-5), "HPEXPIRETIME": r(-5), "HGETDEL": w(-5), "HGETEX": w(-5),
	"HSETEX": w(-6),

	// Lists.
	"LPUSH": w(-3), "RPUSH": w(-3), "LPUSHX": w(-3), "RPUSHX": w(-3), "LPOP": w(-2), "RPOP": w(-2),
	"LLEN": r(2), "LRANGE": r(4), "LINDEX": r(3), "LSET": w(4), "LREM": w(4), "LTRIM": w(4),
	"LINSERT": w(5), "LPOS": r(-3), "RPOPLPUSH": w2(3), "LMOVE": w2(5), "BLPOP": w(-3), "BRPOP": w(-3),
	"BRPOPLPUSH": w2(4), "BLMOVE": w2(6), "LMPOP": x(-4, write), "BLMPOP": x(-5, write),

	// Sets.
	"SADD": w(-3), "SREM": w(-3), "SMEMBERS": r(2), "SISMEMBER": r(3), "SMISMEMBER": r(-3),
	"SCARD": r(2), "SPOP": w(-2), "SRANDMEMBER": r(-2), "SMOVE": w2(4), "SINTER": rk(-2),
	"SINTERCARD": x(-3, read), "SINTERSTORE": wk(-3), "SUNION": rk(-2), "SUNIONSTORE": wk(-3),
	"SDIFF": rk(-2), "SDIFFSTORE": wk(-3), "SSCAN": r(-3),

	// Sorted sets.
	"ZADD": w(-4), "ZINCRBY": w(4), "ZREM": w(-3), "ZCARD": r(2), "ZCOUNT": r(4), "ZSCORE": r(3),
	"ZMSCORE": r(-3), "ZRANK": r(-3), "ZREVRANK": r(-3), "ZRANGE": r(-4), "ZRANGESTORE": w2(-5),
	"ZREVRANGE": r(-4), "ZRANGEBYSCORE": r(-4), "ZREVRANGEBYSCORE": r(-4), "ZRANGEBYLEX": r(-4),
	"ZREVRANGEBYLEX": r(-4), "ZLEXCOUNT": r(4), "ZREMRANGEBYRANK": w(4), "ZREMRANGEBYSCORE": w(4),
	"ZREMRANGEBYLEX": w(4), "ZUNION": x(-3, read), "ZUNIONSTORE": w(-4), "ZINTER": x(-3, read),
	"ZINTERSTORE": w(-4), "ZINTERCARD": x(-3, read), "ZDIFF": x(-3, read), "ZDIFFSTORE": w(-4),
	"ZPOPMIN": w(-2), "ZPOPMAX": w(-2), "BZPOPMIN": w(-3), "BZPOPMAX": w(-3), "ZMPOP": x(-4, write),
	"BZMPOP": x(-5, write), "ZRANDMEMBER": r(-2), "ZSCAN": r(-3),

	// HyperLogLog and geo.
	"PFADD": w(-2), "PFCOUNT": rk(-2), "PFMERGE": wk(-2), "PFDEBUG": x(3, rule.AdminDebug),
	"PFSELFTEST": x(1, rule.AdminDebug),
	"GEOADD":     w(-5), "GEODIST": r(-4), "GEOHASH": r(-2), "GEOPOS": r(-2), "GEORADIUS": w(-6),
	"GEORADIUS_RO": r(-6), "GEORADIUSBYMEMBER": w(-5), "GEORADIUSBYMEMBER_RO": r(-5),
	"GEOSEARCH": r(-7), "GEOSEARCHSTORE": w2(-8),

	// Streams.
	"XADD": w(-5), "XRANGE": r(-4), "XREVRANGE": r(-4), "XLEN": r(2), "XREAD": x(-4, read),
	"XREADGROUP": x(-7, write), "XDEL": w(-3), "XTRIM": w(-4), "XACK": w(-4), "XPENDING": r(-3),
	"XCLAIM": w(-6), "XAUTOCLAIM": w(-6), "XSETID": w(-3),
	"XINFO": container(-2, map[string]command{
		"CONSUMERS": {arity: 4, keys: keyNone}, "GROUPS": x(3, read), "STREAM": x(-3, read), "HELP": x(2, read),
	}),
	"XGROUP": container(-2, map[string]command{
		"CREATE": x(-5, write), "CREATECONSUMER": x(5, write), "DELCONSUMER": x(5, write),
		"DESTROY": x(4, write), "SETID": x(-5, write), "HELP": x(2, read),
	}),

	// Pub/Sub: publishing reaches other clients, a write of sorts.
	"PUBLISH": x(3, write), "SPUBLISH": x(3, write), "SUBSCRIBE": x(-2, read), "UNSUBSCRIBE": x(-1, read),
	"PSUBSCRIBE": x(-2, read), "PUNSUBSCRIBE": x(-1, read), "SSUBSCRIBE": x(-2, read),
	"SUNSUBSCRIBE": x(-1, read),
	"PUBSUB": container(-2, map[string]command{
		"CHANNELS": x(-2, read), "NUMPAT": x(2, read), "NUMSUB": x(-2, read), "SHARDCHANNELS": x(-2, read),
		"SHARDNUMSUB": x(-2, read), "HELP": x(2, read),
	}),

	// Transactions.
	"MULTI": x(1, read), "EXEC": x(1, read), "DISCARD": x(1, read), "WATCH": rk(-2), "UNWATCH": x(1, read),

	// Scripting and functions.
	"EVAL": x(-3, rule.CodeScript), "EVALSHA": x(-3, rule.CodeScript), "EVAL_RO": x(-3, rule.CodeScript),
	"EVALSHA_RO": x(-3, rule.CodeScript), "FCALL": x(-3, rule.CodeScript), "FCALL_RO": x(-3, rule.CodeScript),
	"SCRIPT": container(-2, map[string]command{
		"LOAD": x(3, rule.CodeScript), "EXISTS": x(-3, read), "FLUSH": x(-2, rule.CodeScript),
		"KILL": x(2, rule.CodeScript), "DEBUG": x(3, rule.AdminDebug), "HELP": x(2, read),
	}),
	"FUNCTION": container(-2, map[string]command{
		"LOAD": x(-3, rule.CodeDefine), "DELETE": x(3, rule.CodeDefine), "FLUSH": x(-2, rule.CodeDefine),
		"RESTORE": x(-3, rule.CodeDefine), "DUMP": x(2, read), "LIST": x(-2, read), "STATS": x(2, read),
		"KILL": x(2, rule.CodeScript), "HELP": x(2, read),
	}),

	// Connection.
	"AUTH": x(-2, read), "HELLO": x(-1, read), "PING": x(-1, read), "ECHO": x(2, read),
	"SELECT": x(2, read), "QUIT": x(-1, read), "RESET": x(1, read), "READONLY": x(1, read),
	"READWRITE": x(1, read), "ASKING": x(1, read),
	"CLIENT": container(-2, map[string]command{
		"ID": x(2, read), "INFO": x(2, read), "GETNAME": x(2, read), "SETNAME": x(3, read),
		"SETINFO": x(4, read), "REPLY": x(3, read), "TRACKING": x(-3, read), "TRACKINGINFO": x(2, read),
		"GETREDIR": x(2, read), "CACHING": x(3, read), "NO-TOUCH": x(3, read), "HELP": x(2, read),
		"LIST": x(-2, rule.AdminInspect), "KILL": x(-3, rule.AdminKill), "UNBLOCK": x(-3, rule.AdminKill),
		"PAUSE": x(-3, rule.AdminBlocking), "UNPAUSE": x(2, rule.AdminBlocking),
		"NO-EVICT": x(3, rule.AdminConfig),
		// Redis 8's opt-in to maintenance push notifications, which
		// go-redis v9 sends on every RESP3 connection.
		"MAINT_NOTIFICATIONS": x(-3, read),
	}),

	// Server administration.
	"BGREWRITEAOF": x(1, rule.AdminMaintenance), "BGSAVE": x(-1, rule.AdminMaintenance),
	"SAVE": x(1, rule.AdminMaintenance), "LASTSAVE": x(1, read), "SHUTDOWN": x(-1, rule.AdminShutdown),
	"DEBUG": x(-2, rule.AdminDebug), "FLUSHALL": x(-1, rule.AdminFlush), "FLUSHDB": x(-1, rule.AdminFlush),
	"SWAPDB": x(3, rule.AdminFlush), "INFO": x(-1, read), "MONITOR": x(1, rule.AdminMonitor),
	"SYNC": x(1, rule.AdminMonitor), "PSYNC": x(-3, rule.AdminMonitor),
	"REPLCONF": x(-1, rule.AdminReplication), "FAILOVER": x(-1, rule.AdminReplication),
	"REPLICAOF": x(3, ""), "SLAVEOF": x(3, ""), // decided by their arguments
	"ROLE": x(1, read), "TIME": x(1, read), "LOLWUT": x(-1, read),
	"MIGRATE": x(-6, rule.ReachNetwork),
	"CONFIG": container(-2, map[string]command{
		"GET": x(-3, rule.AdminConfig), "SET": x(-4, ""), // decided by the parameters
		"RESETSTAT": x(2, rule.AdminConfig), "REWRITE": x(2, rule.AdminConfig), "HELP": x(2, read),
	}),
	"SLOWLOG": container(-2, map[string]command{
		"GET": x(-2, rule.AdminInspect), "LEN": x(2, read), "RESET": x(2, rule.AdminConfig), "HELP": x(2, read),
	}),
	"LATENCY": container(-2, map[string]command{
		"DOCTOR": x(2, read), "GRAPH": x(3, read), "HISTOGRAM": x(-2, read), "HISTORY": x(3, read),
		"LATEST": x(2, read), "RESET": x(-2, rule.AdminConfig), "HELP": x(2, read),
	}),
	"MEMORY": container(-2, map[string]command{
		"DOCTOR": x(2, read), "MALLOC-STATS": x(2, read), "PURGE": x(2, rule.AdminMaintenance),
		"STATS": x(2, read), "USAGE": r(-3), "HELP": x(2, read),
	}),
	"MODULE": container(-2, map[string]command{
		"LIST": x(2, read), "LOAD": x(-3, rule.ReachPlugin), "LOADEX": x(-3, rule.ReachPlugin),
		"UNLOAD": x(3, rule.AdminConfig), "HELP": x(2, read),
	}),
	"ACL": container(-2, map[string]command{
		"CAT": x(-2, read), "DELUSER": x(-3, rule.PrivilegeRole), "DRYRUN": x(-4, read),
		"GENPASS": x(-2, read), "GETUSER": x(3, rule.ReadCredentials), "LIST": x(2, rule.ReadCredentials),
		"LOAD": x(2, rule.PrivilegeRole), "LOG": x(-2, rule.AdminInspect), "SAVE": x(2, rule.PrivilegeRole),
		"SETUSER": x(-3, rule.PrivilegeRole), "USERS": x(2, read), "WHOAMI": x(2, read), "HELP": x(2, read),
	}),
	"COMMAND": container(-1, map[string]command{
		"COUNT": x(2, read), "DOCS": x(-2, read), "GETKEYS": x(-3, read), "GETKEYSANDFLAGS": x(-3, read),
		"INFO": x(-2, read), "LIST": x(-2, read), "HELP": x(2, read),
	}),
	"CLUSTER": container(-2, map[string]command{
		"MEET": x(-4, rule.ReachNetwork), "INFO": x(2, read), "NODES": x(2, read), "SLOTS": x(2, read),
		"SHARDS": x(2, read), "MYID": x(2, read), "MYSHARDID": x(2, read), "KEYSLOT": x(3, read),
		"COUNTKEYSINSLOT": x(3, read), "GETKEYSINSLOT": x(4, read), "LINKS": x(2, read),
		"REPLICAS": x(3, read), "SLAVES": x(3, read), "COUNT-FAILURE-REPORTS": x(3, read), "HELP": x(2, read),
		"ADDSLOTS": x(-3, rule.AdminReplication), "ADDSLOTSRANGE": x(-4, rule.AdminReplication),
		"BUMPEPOCH": x(2, rule.AdminReplication), "DELSLOTS": x(-3, rule.AdminReplication),
		"DELSLOTSRANGE": x(-4, rule.AdminReplication), "FAILOVER": x(-2, rule.AdminReplication),
		"FLUSHSLOTS": x(2, rule.AdminReplication), "FORGET": x(3, rule.AdminReplication),
		"REPLICATE": x(3, rule.AdminReplication), "RESET": x(-2, rule.AdminReplication),
		"SAVECONFIG": x(2, rule.AdminReplication), "SET-CONFIG-EPOCH": x(3, rule.AdminReplication),
		"SETSLOT": x(-4, rule.AdminReplication),
	}),
}

// fileParams are configuration parameters that name files the server
// writes: CONFIG SET dir /var/www + dbfilename shell.php + SAVE is the
// classic way from Redis to a shell.
var fileParams = map[string]bool{
	"dir": true, "dbfilename": true, "logfile": true, "appendfilename": true, "appenddirname": true,
}

// secretParams are configuration parameters whose value is a secret.
var secretParams = map[string]bool{
	"requirepass": true, "masterauth": true, "tls-key-file-pass": true, "tls-client-key-file-pass": true,
}
