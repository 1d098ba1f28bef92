package store

import _ "example.org/zk/internal/web"
