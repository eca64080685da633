"""Locust suites for the close period: users, shapes, profiles and payload builders."""
