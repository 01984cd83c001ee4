//! Dispatch: weighted round-robin over credential pools with cooldowns and failover (built in the gateway issue).
