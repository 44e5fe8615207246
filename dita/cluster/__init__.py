"""Helpers for running the Hazelcast cluster dita projects its state into."""
