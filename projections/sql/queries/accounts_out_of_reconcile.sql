-- Accounts whose own capital figure (K) disagrees with the exchange's (E).
SELECT kernel_id, k_capital, e_wallet_balance, reconcile_status, reconcile_delta, reconcile_explanation
FROM "dita.accounts"
WHERE reconcile_status IN ('WARN', 'ERROR')
ORDER BY ABS(reconcile_delta) DESC
