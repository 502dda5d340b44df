// implemented in issue #2
