// Package scraper discovers nodes with an informer and scrapes every
// kubelet's resource metrics endpoint into the TSDB and the latest-value
// index. One bad kubelet response fails that node's scrape only.
package scraper
