-- Datasets (the dataset.list operation): SELECT * FROM lakehouse_datasets();
CREATE OR REPLACE MACRO lakehouse_datasets() AS TABLE
    SELECT unnest(system.main.lh_datasets(system.main.getvariable('lh_profile')), recursive := true);

-- One dataset's columns, rows and ingest history as JSON: SELECT lakehouse_dataset('workers');
CREATE OR REPLACE MACRO lakehouse_dataset(name) AS system.main.lh_dataset(system.main.getvariable('lh_profile'), name);

-- Corpora (the corpus.list operation): SELECT * FROM lakehouse_corpora();
CREATE OR REPLACE MACRO lakehouse_corpora() AS TABLE
    SELECT unnest(system.main.lh_corpora(system.main.getvariable('lh_profile')), recursive := true);
