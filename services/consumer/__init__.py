"""The consumer process: the app (root task group, signals), the per-tag runner, outputs, in-flight requests,
$SRV discovery."""
