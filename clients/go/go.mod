module github.com/repast-dev/repast/clients/go

go 1.24
