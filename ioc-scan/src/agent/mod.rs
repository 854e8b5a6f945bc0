//! The agent: the long-running ioc-scan process of a device.
