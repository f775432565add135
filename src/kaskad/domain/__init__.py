"""The pure core: values, rules and state machines. No I/O, no clock, no frameworks."""
