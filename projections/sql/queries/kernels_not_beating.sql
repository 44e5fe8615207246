-- Kernels whose last heartbeat is older than 5 seconds (the parameter is now, in Unix seconds),
-- and kernels that reported a clean stop (a STOPPED entry lives 24 h). A RUNNING entry does
-- not expire, so a kernel that died stays listed here; kernels_dead.sql is the alert on those.
SELECT kernel_id, state, host, pid, heartbeat_at, CAST(? AS DOUBLE) - heartbeat_at AS silent_for_s
FROM "dita.kernels"
WHERE heartbeat_at < CAST(? AS DOUBLE) - 5 OR state = 'STOPPED'
