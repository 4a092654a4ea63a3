-- Queries of the webhook receiver (worker/webhooks/app.py). State changes are calsync functions; these call them.

-- name: webhook_receive
SELECT delivery_id, outcome, detail, appointment_id
FROM calsync.receive_webhook(%(event)s::jsonb, %(body)s, %(headers)s::jsonb, %(signature)s);

-- name: webhook_receive_batch
SELECT ord, delivery_id, outcome, detail, appointment_id
FROM calsync.receive_webhooks(%(deliveries)s::jsonb) ORDER BY ord;

-- name: webhook_retry_parked
SELECT calsync.retry_parked_webhooks(now(), NULL, %(limit)s);

-- name: webhook_health
SELECT count(*) FILTER (WHERE outcome = 'parked') AS parked FROM calsync.webhook_deliveries WHERE outcome = 'parked';
