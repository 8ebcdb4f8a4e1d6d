module maand/gotmpl-reference

go 1.19
