-- Hazelcast SQL mappings of dita's maps. Documents are JSON; json-flat maps
-- their top-level fields to columns (nested orders stay in the document).
CREATE OR REPLACE MAPPING "dita.slots" (
    __key VARCHAR,
    kernel_id VARCHAR,
    "key" VARCHAR,
    version BIGINT,
    updated_at VARCHAR,
    slot_id INT,
    trade_id VARCHAR,
    asset VARCHAR,
    side VARCHAR,
    entry_price DOUBLE,
    size DOUBLE,
    initial_size DOUBLE,
    leverage DOUBLE,
    entry_time VARCHAR,
    unrealized_pnl DOUBLE,
    realized_pnl DOUBLE,
    closed BOOLEAN,
    active_leg_index INT,
    fsm_state VARCHAR,
    close_reason VARCHAR,
    last_event_time VARCHAR,
    last_mark_price DOUBLE
)
TYPE IMap OPTIONS ('keyFormat' = 'varchar', 'valueFormat' = 'json-flat');

CREATE OR REPLACE MAPPING "dita.accounts" (
    __key VARCHAR,
    kernel_id VARCHAR,
    version BIGINT,
    updated_at VARCHAR,
    seed_capital DOUBLE,
    k_capital DOUBLE,
    k_realized_pnl DOUBLE,
    k_fees_paid DOUBLE,
    k_funding_net DOUBLE,
    e_known BOOLEAN,
    e_wallet_balance DOUBLE,
    available_capital DOUBLE,
    reconcile_status VARCHAR,
    reconcile_delta DOUBLE,
    reconcile_explanation VARCHAR,
    unsettled_fills INT,
    event_seq BIGINT,
    equity DOUBLE,
    unrealized_pnl DOUBLE,
    open_positions INT,
    open_notional DOUBLE
)
TYPE IMap OPTIONS ('keyFormat' = 'varchar', 'valueFormat' = 'json-flat');

CREATE OR REPLACE MAPPING "dita.kernels" (
    __key VARCHAR,
    kernel_id VARCHAR,
    state VARCHAR,
    max_slots INT,
    started_at DOUBLE,
    heartbeat_at DOUBLE,
    host VARCHAR,
    pid INT
)
TYPE IMap OPTIONS ('keyFormat' = 'varchar', 'valueFormat' = 'json-flat');

CREATE OR REPLACE MAPPING "dita.control" (
    __key VARCHAR,
    mode VARCHAR,
    verbosity VARCHAR,
    journal BOOLEAN,
    rev BIGINT,
    author VARCHAR,
    reason VARCHAR,
    issued_at DOUBLE
)
TYPE IMap OPTIONS ('keyFormat' = 'varchar', 'valueFormat' = 'json-flat');
