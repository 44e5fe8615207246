-- Open positions across all kernels, largest unrealized loss first.
SELECT kernel_id, slot_id, trade_id, asset, side, size, entry_price, unrealized_pnl, realized_pnl, fsm_state
FROM "dita.slots"
WHERE fsm_state IN ('POSITION_OPEN', 'EXIT_REQUESTED', 'EXIT_WORKING') AND size > 0
ORDER BY unrealized_pnl ASC
