package metricsapi

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// tableRow is one object of a table: its name, usage and window.
type tableRow struct {
	name   string
	usage  corev1.ResourceList
	window time.Duration
	object runtime.Object
}

// usageTable has the columns metrics-server prints: Name, one quantity
// column per resource (cpu, memory, …, sorted), Window.
func usageTable(list metav1.ListMeta, rows []tableRow) *metav1.Table {
	table := &metav1.Table{ListMeta: metav1.ListMeta{ResourceVersion: list.ResourceVersion, Continue: list.Continue}}
	var resources []corev1.ResourceName
	for _, r := range rows {
		for name := range r.usage {
			if !slices.Contains(resources, name) {
				resources = append(resources, name)
			}
		}
	}
	slices.Sort(resources)
	table.ColumnDefinitions = []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"}}
	for _, name := range resources {
		table.ColumnDefinitions = append(table.ColumnDefinitions, metav1.TableColumnDefinition{Name: string(name), Type: "string", Format: "quantity"})
	}
	table.ColumnDefinitions = append(table.ColumnDefinitions, metav1.TableColumnDefinition{Name: "Window", Type: "string", Format: "duration"})
	for _, r := range rows {
		cells := make([]any, 0, len(resources)+2)
		cells = append(cells, r.name)
		for _, name := range resources {
			q := r.usage[name]
			cells = append(cells, q.String())
		}
		cells = append(cells, r.window.String())
		table.Rows = append(table.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: r.object}})
	}
	return table
}
