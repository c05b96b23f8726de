-- Datasets as the engine records them: SELECT * FROM lakehouse_datasets();
CREATE OR REPLACE MACRO lakehouse_datasets() AS TABLE
    SELECT name, kind, key, created_at, updated_at FROM lake.lh.datasets ORDER BY name;
