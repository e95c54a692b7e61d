"""CloudWatch as AWS answers it: GetMetricData's limits of 500 queries and its pages."""
