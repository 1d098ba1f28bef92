module example.org/zk

go 1.26
