"""Cache right-sizing (issue 19): read 90 days of the cache's hourly metrics, apply the rule, recommend one node type.

`rule.py` is pure (series in, recommendation out), `prices.py` reads the price table (prices.json, data
with its date, region and source), `metrics.py` asks CloudWatch, `handler.py` is the scheduled Lambda
function that publishes the recommendation to the ops topic and logs it. It runs outside the VPC and
needs only CloudWatch, SNS and the price table: it never connects to the cache.
"""
