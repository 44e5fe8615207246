-- Kernels that died: they hold state (an account in dita.accounts) but have no live entry in
-- dita.kernels. Their entry is not STOPPED, yet it has not beaten for more than 30 s: the
-- process ended without a clean stop (SIGKILL, OOM, a lost host). A RUNNING entry does not
-- expire, so an alert on this query fires for as long as the kernel is dead. It clears when
-- the kernel runs again (it beats) or stops cleanly (STOPPED). The parameter is now, in Unix
-- seconds. 30 s is the default --dead-after of `dita watch`, which shows these kernels DEAD
-- (a kernel beats every second, and is STALE after 5 s of silence).
-- Not listed: a kernel with state but no entry at all (GONE in `dita watch`), whose STOPPED
-- entry expired (it stopped more than 24 h ago) or whose entry someone removed.
SELECT a.kernel_id, k.state, k.host, k.pid, k.heartbeat_at, CAST(? AS DOUBLE) - k.heartbeat_at AS silent_for_s
FROM "dita.accounts" a
JOIN "dita.kernels" k ON k.__key = a.__key
WHERE (k.state IS NULL OR k.state <> 'STOPPED')
  AND (k.heartbeat_at IS NULL OR k.heartbeat_at < CAST(? AS DOUBLE) - 30)
ORDER BY k.heartbeat_at ASC
