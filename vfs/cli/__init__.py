"""The vfs command line: builds concrete objects and wires them; nothing imports it."""
