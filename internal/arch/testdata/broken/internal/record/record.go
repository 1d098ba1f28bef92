package record

import _ "example.org/zk/internal/testkit"
